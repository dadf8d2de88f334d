/**
 * Ends a jest run with the plain line CI reads ("N passed, N failed, N skipped"), after jest's own summary.
 * Skipped counts todo and pending tests: prerequisites missing outside CI (under CI=true they fail instead).
 */
class SummaryReporter {
  onRunComplete(_contexts, results) {
    const skipped = results.numPendingTests + results.numTodoTests;
    process.stdout.write(`\n${results.numPassedTests} passed, ${results.numFailedTests} failed, ${skipped} skipped\n`);
  }
}
module.exports = SummaryReporter;
