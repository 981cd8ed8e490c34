// What the code generator knows while it turns one layer kind's steps into calls (steps.ts), shared with
// the helpers that compute some of the arguments (workspaces.ts).
import type { LayerSchedule, LayoutPlan, Pass, RankProgram, ScheduleSizes } from "../schedule/ir.js";

/** A table of constants the generated program uploads to the GPU at start (decays, prefix gaps). */
export interface TableSink {
  name: string;
  ctype: string;
  values: string;
  count: number;
  comment: string;
}

export interface StepContext {
  program: RankProgram;
  schedule: LayerSchedule;
  plan: LayoutPlan;
  sizes: ScheduleSizes;
  /** C++ name of the layer kind. */
  kind: string;
  pass: Pass;
  tables: TableSink[];
  /** The kind keeps segment-state workspaces (workspaces.ts). */
  workspaces: boolean;
}
