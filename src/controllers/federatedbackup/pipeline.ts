// Which node steps of a round run now, and which one holds the cut. Pure.
//
// Only one node at a time holds the cut (the coordinating node: it freezes its VMs and cuts the shared
// storage); the run's storage Leases name it. Everything else may overlap: the Jobs of the next `lookAhead`
// steps are started ahead, so that their pods are running and waiting for their turn (the agent watches the
// Leases), and a step whose cut is made goes on extracting after it has handed the cut on. The cut is handed
// on only while fewer than `maxExtractions` steps are extracting. With lookAhead 0 the steps run strictly one
// after the other, each from its Job's start to its end, as restores always do.

export interface PipelineSettings {
  lookAhead: number;
  maxExtractions: number;
}

export interface PipelineStep {
  name: string;
  /** Started: its Job was created (the step recorded Running). */
  started: boolean;
  /** Succeeded or Failed. */
  finished: boolean;
  /** Its agent made its cut (or it finished, or its cut Job is done): it no longer needs the cut. */
  cutDone: boolean;
  /**
   * Its agent reported the step's result: its extraction is over, and only its pod's exit (and the Job
   * controller's note of it, up to a second later) is left. It no longer counts against maxExtractions.
   */
  reported?: boolean;
}

export interface PipelinePlan {
  /** The step that holds the cut, or is to be given it: the Leases must name it. */
  cutter?: string;
  /** Steps whose Jobs start now, in order. */
  start: string[];
}

/**
 * Steps whose agents reported and whose Jobs have not ended, at most, before the cut waits for one to end.
 * The Job controller notes a pod's end in batches, a second or two after it: at ten steps a second some
 * 10 to 20 reported steps are still ending, and a lower bound stalls the cut once a second (8 did).
 */
export const EXITING_LIMIT = 32;

/** Steps started and not done with their cut: the one cutting and those waiting for their turn. */
const waitingOrCutting = (s: PipelineStep) => s.started && !s.finished && !s.cutDone;
const extracting = (s: PipelineStep) => s.started && !s.finished && s.cutDone && !s.reported;

/**
 * The plan for a round's node steps, given in their order, and the step the Leases name now (`holder`).
 * Strict (lookAhead 0): the first unfinished step is both the cutter and the only step running.
 */
export function planPipeline(
  steps: readonly PipelineStep[],
  holder: string | undefined,
  settings: PipelineSettings,
): PipelinePlan {
  const open = steps.filter((s) => !s.finished);
  if (settings.lookAhead <= 0) {
    const first = open[0];
    if (!first) return { start: [] };
    return { cutter: first.name, start: first.started ? [] : [first.name] };
  }
  const cutter = cutterOf(open, holder, settings.maxExtractions);
  const start: string[] = [];
  let waiting = open.filter(waitingOrCutting).length;
  for (const step of open) {
    if (step.started) continue;
    // The cutter's Job starts whatever the look-ahead (it may be waiting for its own turn already); the
    // others fill the look-ahead in order.
    if (step.name !== cutter && waiting >= 1 + settings.lookAhead) break;
    start.push(step.name);
    waiting++;
  }
  return { ...(cutter ? { cutter } : {}), start };
}

/**
 * The plan while VMs a failed step left frozen are being thawed: nobody new is given the cut (the Leases stay
 * with the step that last held it). Jobs that wait for their turn may still start; a strict run starts none,
 * its agents freezing as soon as they run.
 */
export function holdingTheCut(plan: PipelinePlan, settings: PipelineSettings): PipelinePlan {
  return { start: settings.lookAhead > 0 ? plan.start : [] };
}

/**
 * Who holds the cut: the holder while it still needs it; else the first step that has not made its cut, once
 * fewer than maxExtractions steps are extracting (and fewer than EXITING_LIMIT reported ones are still
 * ending); else nobody for now (the Leases stay with the run).
 */
export function cutterOf(
  open: readonly PipelineStep[],
  holder: string | undefined,
  maxExtractions: number,
): string | undefined {
  const held = open.find((s) => s.name === holder);
  if (held && !held.cutDone) return held.name;
  const next = open.find((s) => !s.cutDone);
  if (!next) return undefined;
  // Steps that reported but whose Jobs have not ended yet (the pod exits, then the Job controller notes it,
  // up to a second later) are let linger up to EXITING_LIMIT, so that the Jobs in flight stay bounded even
  // when they are slow to end: at most 1 + lookAhead + maxExtractions + EXITING_LIMIT.
  const exiting = open.filter((s) => s.started && s.cutDone && s.reported).length;
  return open.filter(extracting).length < maxExtractions && exiting < EXITING_LIMIT ? next.name : undefined;
}
