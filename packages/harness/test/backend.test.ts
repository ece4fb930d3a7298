import { describe, expect, it } from 'vitest';
import { UnsupportedError } from '@gradmax/core';
import { assertTaskRunsOn, backendKey, backendLabel, getTask, listTasks, parseBackendRequest } from '@gradmax/harness';

describe('harness backends', () => {
  it('accepts webgpu on the command line', () => {
    expect(parseBackendRequest('webgpu')).toBe('webgpu');
  });

  it('keys results by backend, and by adapter on webgpu', () => {
    expect(backendKey({ name: 'wasm' })).toBe('wasm');
    const adapter = { vendor: 'google', architecture: 'swiftshader', description: 'SwiftShader driver 5.0.0', software: true };
    expect(backendKey({ name: 'webgpu', adapter })).toBe('webgpu-google-swiftshader-swiftshader-driver-5.0.0');
    expect(backendKey({ name: 'webgpu', adapter: { vendor: '', architecture: '', description: '', software: false } })).toBe('webgpu-unknown-adapter');
    expect(backendLabel({ name: 'webgpu', adapter })).toBe('webgpu on google swiftshader (SwiftShader driver 5.0.0), software');
  });

  it('refuses tasks that read synchronously on webgpu, with a typed error naming the task', () => {
    const runs = listTasks().filter((t) => t.asyncReads).map((t) => t.name);
    expect(runs).toEqual(['mnist-cnn', 'fashion-mnist-cnn']);
    expect(() => assertTaskRunsOn(getTask('mnist-cnn'), { name: 'webgpu' })).not.toThrow();
    expect(() => assertTaskRunsOn(getTask('mnist-mlp'), { name: 'wasm' })).not.toThrow();
    expect(() => assertTaskRunsOn(getTask('mnist-mlp'), { name: 'webgpu' })).toThrow(UnsupportedError);
    expect(() => assertTaskRunsOn(getTask('teacher-student'), { name: 'webgpu' })).toThrow(/task "teacher-student" cannot run on webgpu/);
  });
});
