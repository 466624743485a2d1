// Mocha's spec reporter plus one plain closing line, "<suite>: N passed, N failed, N skipped",
// which CI reads whatever the runner.
"use strict";
const Mocha = require("mocha");
const { EVENT_RUN_END } = Mocha.Runner.constants;

class SpecWithTotals extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    const label = (options.reporterOption && options.reporterOption.label) || "tests";
    runner.once(EVENT_RUN_END, () => {
      const s = this.stats;
      process.stdout.write(`${label}: ${s.passes} passed, ${s.failures} failed, ${s.pending} skipped\n`);
    });
  }
}
module.exports = SpecWithTotals;
