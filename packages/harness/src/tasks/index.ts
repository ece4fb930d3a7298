/**
 * The task registry.
 */
import { UnknownNameError } from '@gradmax/core';
import type { Task } from '../types.js';
import { fashionMnistCnn, mnistCnn } from './mnist-cnn.js';
import { fashionMnistMlp, mnistMlp } from './mnist-mlp.js';
import { fashionMnistResnet, mnistResnet } from './residual-cnn.js';
import { teacherStudent } from './teacher-student.js';

export { mnistCnn, fashionMnistCnn, describeMnistCnn, type MnistCnnConfig } from './mnist-cnn.js';
export { mnistMlp, fashionMnistMlp, evaluateMlp, describeMnistMlp, type MnistMlpConfig } from './mnist-mlp.js';
export { teacherStudent, teacherStudentStrategyOptions, describeTeacherStudent, SCALED_STRATEGIES, type TeacherStudentConfig } from './teacher-student.js';
export { teacherStudentReport } from './teacher-student-report.js';
export { mnistResnet, fashionMnistResnet, buildResidualCnn, describeResidualCnn, type ResidualCnnConfig } from './residual-cnn.js';

const registry = new Map<string, Task<any>>([
  [teacherStudent.name, teacherStudent],
  [mnistMlp.name, mnistMlp],
  [mnistCnn.name, mnistCnn],
  [fashionMnistMlp.name, fashionMnistMlp],
  [fashionMnistCnn.name, fashionMnistCnn],
  [mnistResnet.name, mnistResnet],
  [fashionMnistResnet.name, fashionMnistResnet],
]);

/** All built-in and registered tasks, in registration order. */
export function listTasks(): Task<any>[] {
  return [...registry.values()];
}

/** The task called `name`; throws {@link UnknownNameError} listing the known tasks. */
export function getTask(name: string): Task<any> {
  const t = registry.get(name);
  if (!t) throw new UnknownNameError('task', name, [...registry.keys()]);
  return t;
}

/** Registers a custom task (its name must be new). Custom tasks run in-process or in workers that import the same module. */
export function registerTask(task: Task<any>): void {
  if (registry.has(task.name) && registry.get(task.name) !== task) throw new UnknownNameError('free task name (taken)', task.name, [...registry.keys()]);
  registry.set(task.name, task);
}
