import { describe, expect, it } from "vitest";
import { collectMeasurements, parseCalibrationLine, ProtocolError } from "./measurements.js";
import { calibrationPlan, DEFAULT_SHAPES } from "./plan.js";

describe("the program's lines", () => {
  it("reads each event of the protocol", () => {
    expect(parseCalibrationLine('{"event":"measure","rank":0,"id":3,"ms":1.25,"runs":20}')).toEqual({
      event: "measure",
      rank: 0,
      id: 3,
      ms: 1.25,
      runs: 20,
    });
    expect(
      parseCalibrationLine(
        '{"event":"device","rank":0,"name":"NVIDIA H100 80GB HBM3","sms":132,"memory_bytes":85520809984,"cc":"9.0","cudnn":null}',
      ),
    ).toMatchObject({ name: "NVIDIA H100 80GB HBM3", cudnn: null });
    expect(parseCalibrationLine('{"event":"skipped","rank":0,"id":4,"why":"no cuDNN"}')).toMatchObject({
      why: "no cuDNN",
    });
  });

  it("leaves human lines and other programs' events alone", () => {
    expect(parseCalibrationLine("NCCL INFO Bootstrap : Using eth0")).toBeUndefined();
    expect(parseCalibrationLine("{not json")).toBeUndefined();
    expect(parseCalibrationLine('{"event":"step","rank":0,"ms":3}')).toBeUndefined();
  });

  it("refuses an event of the protocol with a missing or wrong field, naming it", () => {
    expect(() => parseCalibrationLine('{"event":"measure","rank":0,"id":3,"runs":20}')).toThrow(/valid ms/);
    expect(() => parseCalibrationLine('{"event":"measure","rank":0,"id":3,"ms":0,"runs":20}')).toThrow(
      /not positive/,
    );
    expect(() => parseCalibrationLine('{"event":"device","rank":0,"name":7}')).toThrow(ProtocolError);
  });

  it("reads the gathered benchmark's whole_ms beside its time, and refuses one that is not a positive number", () => {
    expect(
      parseCalibrationLine('{"event":"measure","rank":0,"id":15,"ms":125.5,"runs":20,"whole_ms":106.25}'),
    ).toEqual({ event: "measure", rank: 0, id: 15, ms: 125.5, runs: 20, whole_ms: 106.25 });
    expect(() =>
      parseCalibrationLine('{"event":"measure","rank":0,"id":15,"ms":125.5,"runs":20,"whole_ms":"106"}'),
    ).toThrow(/valid whole_ms/);
    expect(() =>
      parseCalibrationLine('{"event":"measure","rank":0,"id":15,"ms":125.5,"runs":20,"whole_ms":0}'),
    ).toThrow(/not positive/);
  });
});

describe("joining the answers to the plan", () => {
  const plan = calibrationPlan(DEFAULT_SHAPES, 2);
  it("pairs each measurement with its benchmark and keeps rank 0's only", () => {
    const collected = collectMeasurements(plan, [
      { event: "measure", rank: 0, id: 0, ms: 2, runs: 20 },
      { event: "measure", rank: 1, id: 0, ms: 9, runs: 20 },
      { event: "skipped", rank: 0, id: 13, why: "no cuDNN" },
    ]);
    expect(collected.measurements).toEqual([{ benchmark: plan.benchmarks[0], ms: 2, runs: 20 }]);
    expect(collected.skipped).toEqual([{ benchmark: plan.benchmarks[13], why: "no cuDNN" }]);
  });

  it("keeps the gathered benchmark's whole sequence time, and refuses its measurement without one", () => {
    const gathered = plan.benchmarks.find((b) => b.kind === "softmax_gathered")!;
    const collected = collectMeasurements(plan, [
      { event: "measure", rank: 0, id: gathered.id, ms: 125.5, runs: 20, whole_ms: 106.25 },
    ]);
    expect(collected.measurements).toEqual([{ benchmark: gathered, ms: 125.5, runs: 20, wholeMs: 106.25 }]);
    expect(() =>
      collectMeasurements(plan, [{ event: "measure", rank: 0, id: gathered.id, ms: 125.5, runs: 20 }]),
    ).toThrow(/softmax_gathered\) without the whole sequence's time/);
  });

  it("refuses a number outside the plan and a benchmark answered twice", () => {
    expect(() => collectMeasurements(plan, [{ event: "measure", rank: 0, id: 999, ms: 1, runs: 1 }])).toThrow(
      /benchmark 999, which the plan does not have/,
    );
    const twice = { event: "measure", rank: 0, id: 1, ms: 1, runs: 1 } as const;
    expect(() => collectMeasurements(plan, [twice, twice])).toThrow(/twice/);
  });
});
