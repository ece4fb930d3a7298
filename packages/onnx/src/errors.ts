/**
 * Typed errors of `@gradmax/onnx`. All extend the core's {@link GradmaxError}, so callers can catch one base class;
 * `details` names the file, node, initializer or shape concerned.
 * @packageDocumentation
 */
import { GradmaxError } from '@gradmax/core';

/** The bytes are not a valid ONNX model, or a tensor's stored data is inconsistent with its declared shape/type. */
export class OnnxFormatError extends GradmaxError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('onnx-format', message, details);
  }
}

/**
 * An external-data reference is unsafe (absolute path, `..`, or resolving outside the model's folder through links)
 * or unreadable (missing file, offset/length outside the file).
 */
export class ExternalDataError extends GradmaxError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('external-data', message, details);
  }
}

/** A `.npy` file is malformed or holds an unsupported dtype/order/shape. */
export class NpyFormatError extends GradmaxError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('npy-format', message, details);
  }
}

/** The requested onnxruntime execution provider is not available on this machine. */
export class ExecutionProviderError extends GradmaxError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('execution-provider', message, details);
  }
}

/** Reading, writing or renaming a file failed (permission, missing directory, refusing to overwrite the input). */
export class FileAccessError extends GradmaxError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('file-access', message, details);
  }
}

/**
 * Throws {@link FileAccessError} unless `st` describes a regular file: a character device (`/dev/zero`), a FIFO, a
 * socket or a folder would be read without end or block. `what` names the file in the message, e.g. `model file "m"`.
 */
export function assertRegularFile(st: { isFile(): boolean; isDirectory(): boolean; isFIFO(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isSocket(): boolean }, what: string, file: string): void {
  if (st.isFile()) return;
  const kind = st.isDirectory() ? 'a folder' : st.isFIFO() ? 'a FIFO' : st.isCharacterDevice() ? 'a character device' : st.isBlockDevice() ? 'a block device' : st.isSocket() ? 'a socket' : 'not a regular file';
  throw new FileAccessError(`cannot read ${what}: it is ${kind}, not a regular file`, { file });
}

/** Running a model in onnxruntime failed (session creation or inference). */
export class RuntimeError extends GradmaxError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('onnx-runtime', message, details);
  }
}
