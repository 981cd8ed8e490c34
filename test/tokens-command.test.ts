// `lasp tokens` through `main(argv, io)`, with captured output.
import {
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { captureIo } from "../src/cli/test-io.js";
import { main } from "../src/cli/main.js";
import { TOKENS_NEXT } from "../src/cli/tokens-command.js";
import { decodeTokenFile, encodeTokenFile, GPT2_FORMAT, LLAMA3_FORMAT } from "../src/data/llmc-format.js";

async function lasp(argv: string[]): Promise<{ exit: number; stdout: string; stderr: string }> {
  const io = captureIo();
  const exit = await main(argv, io);
  return { exit, stdout: io.out, stderr: io.err };
}

let dir = "";
let count = 0;
const file = (contents: string | Uint8Array, name = `input-${++count}.txt`): string => {
  const path = join(dir, name);
  writeFileSync(path, contents);
  return path;
};
const out = (): string => join(dir, `out-${++count}.bin`);
const tokensOf = (path: string): number[] => [...decodeTokenFile(readFileSync(path)).tokens];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "lasp-tokens-test-"));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("lasp tokens", () => {
  it("writes every byte of every file, in order, as llm.c's GPT-2 token file and says so in one line", async () => {
    const text = file("héllo\n");
    const binary = file(new Uint8Array([0, 255, 0xc3, 10]), "blob.bin");
    const target = out();
    const run = await lasp(["tokens", text, binary, "-o", target]);
    expect(run).toEqual({
      exit: 0,
      stdout: `wrote ${target}: 11 tokens from 2 files (vocab 256, llm.c format v1)\n${TOKENS_NEXT}\n`,
      stderr: "",
    });
    const read = decodeTokenFile(readFileSync(target));
    expect(read.header).toEqual({ format: GPT2_FORMAT, tokens: 11 });
    expect([...read.tokens]).toEqual([...Buffer.from("héllo\n"), 0, 255, 0xc3, 10]);
  });

  it("counts one file as one file", async () => {
    const target = out();
    const run = await lasp(["tokens", file("ab"), "--out", target]);
    expect(run.stdout).toBe(
      `wrote ${target}: 2 tokens from 1 file (vocab 256, llm.c format v1)\n${TOKENS_NEXT}\n`,
    );
  });

  it("replaces a token file it wrote, without --force", async () => {
    const target = out();
    expect((await lasp(["tokens", file("first"), "-o", target])).exit).toBe(0);
    expect((await lasp(["tokens", file("xy"), "-o", target])).exit).toBe(0);
    expect(tokensOf(target)).toEqual([...Buffer.from("xy")]);
  });
});

describe("lasp tokens refuses to replace a file it did not write", () => {
  it("leaves a text file at -o alone (exit 2, the reason, the way out) and replaces it with --force", async () => {
    const notes = file("my notes, not tokens\n".repeat(100));
    const run = await lasp(["tokens", file("abc"), "-o", notes]);
    expect(run.exit).toBe(2);
    expect(run.stdout).toBe("");
    expect(run.stderr).toContain(`lasp: will not replace ${notes}: it is not a token file lasp wrote`);
    expect(run.stderr).toContain("not an llm.c token file");
    expect(run.stderr).toContain("--force");
    expect(readFileSync(notes, "utf8")).toBe("my notes, not tokens\n".repeat(100));

    expect((await lasp(["tokens", file("abc"), "-o", notes, "--force"])).exit).toBe(0);
    expect(tokensOf(notes)).toEqual([...Buffer.from("abc")]);
  });

  it("leaves alone a GPT-2 token file made by llm.c (a token beyond 255) and a Llama-3 one", async () => {
    const gpt2 = encodeTokenFile(GPT2_FORMAT, [72, 50256, 101]);
    const fromLlmc = file(gpt2, "llmc-gpt2.bin");
    const run = await lasp(["tokens", file("abc"), "-o", fromLlmc]);
    expect(run.exit).toBe(2);
    expect(run.stderr).toContain("token 1 is 50256, beyond the byte vocabulary");
    expect(Buffer.from(readFileSync(fromLlmc)).equals(Buffer.from(gpt2))).toBe(true);

    const llama = file(encodeTokenFile(LLAMA3_FORMAT, [1, 2]), "llmc-llama.bin");
    const refused = await lasp(["tokens", file("abc"), "-o", llama]);
    expect(refused.exit).toBe(2);
    expect(refused.stderr).toContain("it holds llm.c's Llama-3 tokens (uint32), not bytes");
  });

  it("refuses to overwrite an input named as the output by mistake", async () => {
    const spec = file("model m { }\n", "typo.lasp");
    const run = await lasp(["tokens", spec, "-o", spec]);
    expect(run.exit).toBe(2);
    expect(readFileSync(spec, "utf8")).toBe("model m { }\n");
  });
});

describe("lasp tokens on inputs it cannot use", () => {
  it("names every missing file and folder, exits 2 and writes nothing", async () => {
    const missing = join(dir, "missing.txt");
    const folder = join(dir, "docs");
    mkdirSync(folder);
    const target = out();
    const run = await lasp(["tokens", missing, file("ok"), folder, "-o", target]);
    expect(run.exit).toBe(2);
    expect(run.stderr).toBe(
      `lasp: cannot read ${missing}: no such file\n` +
        `lasp: cannot read ${folder}: it is a folder; name the files in it (e.g. ${folder}/*.md)\n`,
    );
    expect(existsSync(target)).toBe(false);
  });

  it("refuses an input that is tokens already: an llm.c token file, either part of a Megatron dataset", async () => {
    const target = out();
    const llmc = file(encodeTokenFile(LLAMA3_FORMAT, [1, 2, 3]), "train.bin");
    const run = await lasp(["tokens", file("text"), llmc, "-o", target]);
    expect(run).toMatchObject({
      exit: 2,
      stderr: `lasp: ${llmc} is already an llm.c token file (3 Llama-3 tokens): name it as \`data\` in a spec; \`lasp tokens\` reads text\n`,
    });
    const index = file(Buffer.concat([Buffer.from("MMIDIDX\0\0", "latin1"), Buffer.alloc(25)]), "corpus.idx");
    const bin = file(new Uint8Array([1, 0, 2, 0]), "corpus.bin");
    expect((await lasp(["tokens", index, "-o", target])).stderr).toBe(
      `lasp: ${index} is a Megatron-LM dataset's index: name its prefix as \`data\` in a spec; \`lasp tokens\` reads text\n`,
    );
    expect((await lasp(["tokens", bin, "-o", target])).stderr).toContain(
      `${bin} is a Megatron-LM dataset's tokens (${join(dir, "corpus")}.idx is beside it)`,
    );
    expect(existsSync(target)).toBe(false);
    // A .bin of its own (no index beside it) is bytes like any other file.
    expect((await lasp(["tokens", file(new Uint8Array([1, 2]), "blob2.bin"), "-o", target])).exit).toBe(0);
  });

  it("refuses to write a file of no tokens (llm.c's loader needs one)", async () => {
    const target = out();
    const run = await lasp(["tokens", file(""), file(""), "-o", target]);
    expect(run).toMatchObject({ exit: 2, stderr: "lasp: no tokens to write: all 2 input files are empty\n" });
    expect(existsSync(target)).toBe(false);
  });

  it("needs -o, and says where an output cannot go (a folder, a missing folder)", async () => {
    const input = file("abc");
    const noOut = await lasp(["tokens", input]);
    expect(noOut.exit).toBe(2);
    expect(noOut.stderr).toContain("--out <file>");

    const folder = join(dir, "a-folder");
    mkdirSync(folder);
    const intoFolder = await lasp(["tokens", input, "-o", folder]);
    expect(intoFolder.exit).toBe(2);
    expect(intoFolder.stderr).toBe(
      `lasp: cannot write ${folder}: it is a folder, not a file; name a file, e.g. ${join(folder, "tokens.bin")}\n`,
    );

    const nowhere = join(dir, "no-such-folder", "t.bin");
    const run = await lasp(["tokens", input, "-o", nowhere]);
    expect(run).toMatchObject({
      exit: 2,
      stderr: `lasp: cannot write ${nowhere}: its folder ${join(dir, "no-such-folder")} does not exist\n`,
    });
  });
});

describe("lasp tokens --eval-out", () => {
  it("holds the stream's last share out in a second token file, the rest in -o, in order", async () => {
    const a = file("abcdefghij");
    const b = file("0123456789");
    const [train, held] = [out(), out()];
    const run = await lasp(["tokens", a, b, "-o", train, "--eval-out", held, "--eval-share", "0.25"]);
    expect(run.exit).toBe(0);
    expect(run.stdout.split("\n").filter((l) => l !== "")).toEqual([
      `wrote ${train}: 15 tokens from 2 files, all but the last 5 of 20 (vocab 256, llm.c format v1)`,
      `wrote ${held}: 5 tokens held out: the last 5 of the 20 (vocab 256, llm.c format v1)`,
      TOKENS_NEXT,
    ]);
    expect(tokensOf(train)).toEqual([...Buffer.from("abcdefghij01234")]);
    expect(tokensOf(held)).toEqual([...Buffer.from("56789")]);
  });

  it("holds a tenth out by default", async () => {
    const [train, held] = [out(), out()];
    expect((await lasp(["tokens", file("x".repeat(100)), "-o", train, "--eval-out", held])).exit).toBe(0);
    expect([tokensOf(train).length, tokensOf(held).length]).toEqual([90, 10]);
  });

  it("refuses a share outside (0, 1), a share without a file, one file for both, and parts too small to train", async () => {
    const input = file("some text to split");
    const cases: [string[], RegExp][] = [
      [
        ["--eval-out", out(), "--eval-share", "1.5"],
        /--eval-share must be a number above 0 and below 1 \(0\.05 holds out 5%\), got /,
      ],
      [
        ["--eval-out", out(), "--eval-share", "zero"],
        /--eval-share must be a number above 0 and below 1 \(0\.05 holds out 5%\), got /,
      ],
      [["--eval-share", "0.1"], /--eval-share needs --eval-out FILE/],
      [["--eval-out", "SAME"], /--eval-out names the same file as -o/],
      [["--eval-out", out(), "--eval-share", "0.01"], /each file needs 2 tokens at least/],
    ];
    for (const [flags, message] of cases) {
      const target = out();
      const argv = ["tokens", input, "-o", target, ...flags.map((f) => (f === "SAME" ? target : f))];
      const run = await lasp(argv);
      expect(run.exit, flags.join(" ")).toBe(2);
      expect(run.stderr).toMatch(message);
      expect(existsSync(target)).toBe(false);
    }
  });

  it("refuses one file for both however --eval-out spells it: ./, absolute, relative, a link, a hard link", async () => {
    const sub = join(dir, `same-${++count}`);
    mkdirSync(sub);
    const input = file("some text to split in two");
    const target = join(sub, "t.bin");
    // A link to a file not there yet leads to where -o writes: the second write would go through it.
    symlinkSync("t.bin", join(sub, "ahead.bin"));
    for (const spelled of [`${sub}/./t.bin`, relative(process.cwd(), target), join(sub, "ahead.bin")]) {
      const run = await lasp(["tokens", input, "-o", target, "--eval-out", spelled]);
      expect(run.exit, spelled).toBe(2);
      expect(run.stderr).toBe(
        `lasp: --eval-out names the same file as -o (${target}, spelled ${spelled}): give the held-out tokens a file of their own\n`,
      );
      expect(run.stdout).toBe("");
      expect(existsSync(target)).toBe(false);
    }
    // Once t.bin is there: a link to it and a second name of it (a hard link) are the same file too.
    expect((await lasp(["tokens", input, "-o", target])).exit).toBe(0);
    const written = readFileSync(target);
    symlinkSync("t.bin", join(sub, "link.bin"));
    linkSync(target, join(sub, "hard.bin"));
    for (const spelled of [join(sub, "link.bin"), join(sub, "hard.bin"), join(sub, "ahead.bin")]) {
      const run = await lasp(["tokens", input, "-o", target, "--eval-out", spelled]);
      expect(run.exit, spelled).toBe(2);
      expect(run.stderr).toContain("--eval-out names the same file as -o");
      expect(readFileSync(target)).toEqual(written);
    }
    // Another file in the same folder is no problem.
    expect((await lasp(["tokens", input, "-o", target, "--eval-out", join(sub, "e.bin")])).exit).toBe(0);
  });

  it("leaves a held-out file lasp did not write alone, and writes neither", async () => {
    const [train, mine] = [out(), file("my notes")];
    const run = await lasp(["tokens", file("abcdefghijklmnopqrstuvwxyz"), "-o", train, "--eval-out", mine]);
    expect(run.exit).toBe(2);
    expect(run.stderr).toContain(`will not replace ${mine}`);
    expect(readFileSync(mine, "utf8")).toBe("my notes");
    expect(existsSync(train)).toBe(false);
  });
});
