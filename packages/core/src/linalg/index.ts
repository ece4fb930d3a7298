/**
 * Dense linear algebra on {@link Matrix}: products, norms, QR, symmetric eigen, SVD and a fast seeded top-k SVD.
 * @packageDocumentation
 */
export { matmul, matmulTransA, matmulTransB } from './matmul.js';
export { transpose } from './transpose.js';
export { frobeniusNorm, columnNorms, rowNorms } from './norms.js';
export { householderQr, type QrResult } from './qr.js';
export { symmetricEigen, SYMMETRY_TOLERANCE, type SymmetricEigenResult } from './symmetric-eigen.js';
export { svd, type SvdResult } from './svd.js';
export { topKSvd, type TopKSvdOptions, type TopKSvdResult } from './top-k-svd.js';
export { completeOrthonormal } from './complete-orthonormal.js';
export { fixSigns } from './fix-signs.js';
