/** Scenario files and the runner behind `cdevemu run`. */
export { loadScenario, readScenario, parseBind, type Scenario, type Step, type TimelineStep, type ProgramSpec } from './schema.js';
export { checkHasProgram, checkProgramSteps, checkScenario, eventCatalog, pluggedModels, type EventCatalog, type ModelEvents, type PresentDevice } from './check.js';
export { runScenario, ScenarioSetupError, type RunOptions, type ScenarioResult, type StepResult } from './runner.js';
export { LocalTarget, type ScenarioTarget } from './target.js';
export { RemoteTarget } from './remote.js';
export { junitXml } from './junit.js';
export { htmlReport, type ReportInput } from './html-report.js';
export { FLAGS_LABEL, scenarioFromFlags, type FlagScenario, type RunFlag } from './flags.js';
