// Generates kernels.wat (WebAssembly text, f64x2 SIMD matrix kernels) and kernels-binary.ts (its assembled
// bytes, base64) for ../wasm-kernels.ts. After editing, regenerate from this folder with:
//   npm i --prefix /tmp/wabt wabt@1.0.39 && NODE_PATH=/tmp/wabt/node_modules node generate-kernels.mjs
// The generated files are committed; the package has no runtime or build dependency on wabt.
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * tb_R_C: c[i..i+R) × [j..j+C) += a·bᵀ tiles. Params (all i32, pointers in bytes): a, b, c, p (row length of
 * a and b), n (row length of c), i0, i1 (row range of a, step R), j0, j1 (row range of b, step C), k0, k1.
 */
function tb(R, C) {
  const L = [];
  const acc = [];
  for (let r = 0; r < R; r++) for (let q = 0; q < C; q++) acc.push(`s${r}${q}`);
  L.push(`(func $tb_${R}_${C} (export "tb_${R}_${C}") (param $a i32) (param $b i32) (param $c i32) (param $p i32) (param $n i32) (param $i0 i32) (param $i1 i32) (param $j0 i32) (param $j1 i32) (param $k0 i32) (param $k1 i32)`);
  L.push(`(local $i i32) (local $j i32) (local $off i32) (local $kv i32) (local $ke i32) (local $rs i32) (local $pc i32) (local $x v128)`);
  for (let r = 0; r < R; r++) L.push(`(local $pa${r} i32)`);
  for (let q = 0; q < C; q++) L.push(`(local $pb${q} i32) (local $y${q} v128)`);
  for (const s of acc) L.push(`(local $${s} v128) (local $f${s} f64)`);
  L.push(`(local.set $rs (i32.shl (local.get $p) (i32.const 3)))`);
  // byte offsets of the vector part [k0, kv) and the end k1
  L.push(`(local.set $kv (i32.shl (i32.add (local.get $k0) (i32.and (i32.sub (local.get $k1) (local.get $k0)) (i32.const -2))) (i32.const 3)))`);
  L.push(`(local.set $ke (i32.shl (local.get $k1) (i32.const 3)))`);
  L.push(`(local.set $i (local.get $i0))`);
  L.push(`(block $iend (loop $iloop (br_if $iend (i32.ge_u (local.get $i) (local.get $i1)))`);
  L.push(`(local.set $pa0 (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $rs))))`);
  for (let r = 1; r < R; r++) L.push(`(local.set $pa${r} (i32.add (local.get $pa${r - 1}) (local.get $rs)))`);
  L.push(`(local.set $j (local.get $j0))`);
  L.push(`(block $jend (loop $jloop (br_if $jend (i32.ge_u (local.get $j) (local.get $j1)))`);
  L.push(`(local.set $pb0 (i32.add (local.get $b) (i32.mul (local.get $j) (local.get $rs))))`);
  for (let q = 1; q < C; q++) L.push(`(local.set $pb${q} (i32.add (local.get $pb${q - 1}) (local.get $rs)))`);
  for (const s of acc) L.push(`(local.set $${s} (v128.const f64x2 0 0))`);
  L.push(`(local.set $off (i32.shl (local.get $k0) (i32.const 3)))`);
  L.push(`(block $kend (loop $kloop (br_if $kend (i32.ge_u (local.get $off) (local.get $kv)))`);
  for (let q = 0; q < C; q++) L.push(`(local.set $y${q} (v128.load align=8 (i32.add (local.get $pb${q}) (local.get $off))))`);
  for (let r = 0; r < R; r++) {
    L.push(`(local.set $x (v128.load align=8 (i32.add (local.get $pa${r}) (local.get $off))))`);
    for (let q = 0; q < C; q++) L.push(`(local.set $s${r}${q} (f64x2.add (local.get $s${r}${q}) (f64x2.mul (local.get $x) (local.get $y${q}))))`);
  }
  L.push(`(local.set $off (i32.add (local.get $off) (i32.const 16)))`);
  L.push(`(br $kloop)))`);
  // horizontal sums
  for (const s of acc) L.push(`(local.set $f${s} (f64.add (f64x2.extract_lane 0 (local.get $${s})) (f64x2.extract_lane 1 (local.get $${s}))))`);
  // scalar tail (at most one k)
  L.push(`(if (i32.lt_u (local.get $kv) (local.get $ke)) (then`);
  for (let r = 0; r < R; r++) for (let q = 0; q < C; q++) {
    L.push(`(local.set $fs${r}${q} (f64.add (local.get $fs${r}${q}) (f64.mul (f64.load (i32.add (local.get $pa${r}) (local.get $kv))) (f64.load (i32.add (local.get $pb${q}) (local.get $kv))))))`);
  }
  L.push(`))`);
  // c[(i+r)*n + j+q] += f
  for (let r = 0; r < R; r++) for (let q = 0; q < C; q++) {
    L.push(`(local.set $pc (i32.add (local.get $c) (i32.shl (i32.add (i32.mul (i32.add (local.get $i) (i32.const ${r})) (local.get $n)) (i32.add (local.get $j) (i32.const ${q}))) (i32.const 3))))`);
    L.push(`(f64.store (local.get $pc) (f64.add (f64.load (local.get $pc)) (local.get $fs${r}${q})))`);
  }
  L.push(`(local.set $j (i32.add (local.get $j) (i32.const ${C})))`);
  L.push(`(br $jloop)))`);
  L.push(`(local.set $i (i32.add (local.get $i) (i32.const ${R})))`);
  L.push(`(br $iloop)))`);
  L.push(`)`);
  return L.join('\n');
}

/**
 * ax_R_U: c[i..i+R) × [j0, j1) += Σ_k A(i, k)·b[k, j0..j1) for k in [k0, k1) (step U), A(i, k) =
 * a[i·ars + k·acs]. Params: a, ars, acs (element strides), b, c, n (row length of b and c), i0, i1 (step R),
 * k0, k1, j0, j1. The j loop is vectorised by 2 with a scalar tail.
 */
function ax(R, U) {
  const L = [];
  L.push(`(func $ax_${R}_${U} (export "ax_${R}_${U}") (param $a i32) (param $ars i32) (param $acs i32) (param $b i32) (param $c i32) (param $n i32) (param $i0 i32) (param $i1 i32) (param $k0 i32) (param $k1 i32) (param $j0 i32) (param $j1 i32)`);
  L.push(`(local $i i32) (local $k i32) (local $off i32) (local $jv i32) (local $je i32) (local $rb i32) (local $t v128) (local $ft f64)`);
  for (let r = 0; r < R; r++) L.push(`(local $pc${r} i32)`);
  for (let u = 0; u < U; u++) L.push(`(local $pb${u} i32) (local $y${u} v128) (local $fy${u} f64)`);
  for (let r = 0; r < R; r++) for (let u = 0; u < U; u++) L.push(`(local $x${r}${u} v128) (local $fx${r}${u} f64)`);
  L.push(`(local.set $rb (i32.shl (local.get $n) (i32.const 3)))`);
  L.push(`(local.set $jv (i32.shl (i32.add (local.get $j0) (i32.and (i32.sub (local.get $j1) (local.get $j0)) (i32.const -2))) (i32.const 3)))`);
  L.push(`(local.set $je (i32.shl (local.get $j1) (i32.const 3)))`);
  L.push(`(local.set $i (local.get $i0))`);
  L.push(`(block $iend (loop $iloop (br_if $iend (i32.ge_u (local.get $i) (local.get $i1)))`);
  L.push(`(local.set $pc0 (i32.add (local.get $c) (i32.mul (local.get $i) (local.get $rb))))`);
  for (let r = 1; r < R; r++) L.push(`(local.set $pc${r} (i32.add (local.get $pc${r - 1}) (local.get $rb)))`);
  L.push(`(local.set $k (local.get $k0))`);
  L.push(`(block $kend (loop $kloop (br_if $kend (i32.ge_u (local.get $k) (local.get $k1)))`);
  for (let r = 0; r < R; r++) for (let u = 0; u < U; u++) {
    // x = a[(i+r)*ars + (k+u)*acs]
    L.push(`(local.set $fx${r}${u} (f64.load (i32.add (local.get $a) (i32.shl (i32.add (i32.mul (i32.add (local.get $i) (i32.const ${r})) (local.get $ars)) (i32.mul (i32.add (local.get $k) (i32.const ${u})) (local.get $acs))) (i32.const 3)))))`);
    L.push(`(local.set $x${r}${u} (f64x2.splat (local.get $fx${r}${u})))`);
  }
  for (let u = 0; u < U; u++) L.push(`(local.set $pb${u} (i32.add (local.get $b) (i32.mul (i32.add (local.get $k) (i32.const ${u})) (local.get $rb))))`);
  L.push(`(local.set $off (i32.shl (local.get $j0) (i32.const 3)))`);
  L.push(`(block $jend (loop $jloop (br_if $jend (i32.ge_u (local.get $off) (local.get $jv)))`);
  for (let u = 0; u < U; u++) L.push(`(local.set $y${u} (v128.load align=8 (i32.add (local.get $pb${u}) (local.get $off))))`);
  for (let r = 0; r < R; r++) {
    let expr = `(v128.load align=8 (i32.add (local.get $pc${r}) (local.get $off)))`;
    for (let u = 0; u < U; u++) expr = `(f64x2.add ${expr} (f64x2.mul (local.get $x${r}${u}) (local.get $y${u})))`;
    L.push(`(v128.store align=8 (i32.add (local.get $pc${r}) (local.get $off)) ${expr})`);
  }
  L.push(`(local.set $off (i32.add (local.get $off) (i32.const 16)))`);
  L.push(`(br $jloop)))`);
  L.push(`(if (i32.lt_u (local.get $jv) (local.get $je)) (then`);
  for (let u = 0; u < U; u++) L.push(`(local.set $fy${u} (f64.load (i32.add (local.get $pb${u}) (local.get $jv))))`);
  for (let r = 0; r < R; r++) {
    let expr = `(f64.load (i32.add (local.get $pc${r}) (local.get $jv)))`;
    for (let u = 0; u < U; u++) expr = `(f64.add ${expr} (f64.mul (local.get $fx${r}${u}) (local.get $fy${u})))`;
    L.push(`(f64.store (i32.add (local.get $pc${r}) (local.get $jv)) ${expr})`);
  }
  L.push(`))`);
  L.push(`(local.set $k (i32.add (local.get $k) (i32.const ${U})))`);
  L.push(`(br $kloop)))`);
  L.push(`(local.set $i (i32.add (local.get $i) (i32.const ${R})))`);
  L.push(`(br $iloop)))`);
  L.push(`)`);
  return L.join('\n');
}

/**
 * trid(a, n, i, v, vn, w, p): the fused step of the Householder tridiagonalisation (see top-eigen.ts). For
 * rows r < i − 1 of the n×n matrix at `a` (lower triangle): a[r, c] −= v[r]·w[c] + w[r]·v[c] (c ≤ r), and
 * p += A'·vn accumulated from the updated lower triangle. v, vn, w, p are byte pointers to vectors.
 */
function trid() {
  return `(func $trid (export "trid") (param $a i32) (param $n i32) (param $i i32) (param $v i32) (param $vn i32) (param $w i32) (param $p i32)
(local $r i32) (local $rr i32) (local $off i32) (local $cv i32) (local $ce i32) (local $rs i32) (local $lim i32)
(local $vr f64) (local $wr f64) (local $vnr f64) (local $x f64) (local $s f64) (local $d f64)
(local $vvr v128) (local $vwr v128) (local $vvnr v128) (local $vx v128) (local $vs v128) (local $pc i32)
(local.set $rs (i32.shl (local.get $n) (i32.const 3)))
(local.set $lim (i32.sub (local.get $i) (i32.const 1)))
(local.set $r (i32.const 0))
(block $rend (loop $rloop (br_if $rend (i32.ge_s (local.get $r) (local.get $lim)))
  (local.set $rr (i32.add (local.get $a) (i32.mul (local.get $r) (local.get $rs))))
  (local.set $vr (f64.load (i32.add (local.get $v) (i32.shl (local.get $r) (i32.const 3)))))
  (local.set $wr (f64.load (i32.add (local.get $w) (i32.shl (local.get $r) (i32.const 3)))))
  (local.set $vnr (f64.load (i32.add (local.get $vn) (i32.shl (local.get $r) (i32.const 3)))))
  (local.set $vvr (f64x2.splat (local.get $vr)))
  (local.set $vwr (f64x2.splat (local.get $wr)))
  (local.set $vvnr (f64x2.splat (local.get $vnr)))
  (local.set $vs (v128.const f64x2 0 0))
  (local.set $ce (i32.shl (local.get $r) (i32.const 3)))
  (local.set $cv (i32.and (local.get $ce) (i32.const -16)))
  (local.set $off (i32.const 0))
  (block $cend (loop $cloop (br_if $cend (i32.ge_u (local.get $off) (local.get $cv)))
    (local.set $vx (f64x2.sub (v128.load align=8 (i32.add (local.get $rr) (local.get $off)))
      (f64x2.add (f64x2.mul (local.get $vvr) (v128.load align=8 (i32.add (local.get $w) (local.get $off))))
                 (f64x2.mul (local.get $vwr) (v128.load align=8 (i32.add (local.get $v) (local.get $off)))))))
    (v128.store align=8 (i32.add (local.get $rr) (local.get $off)) (local.get $vx))
    (local.set $vs (f64x2.add (local.get $vs) (f64x2.mul (local.get $vx) (v128.load align=8 (i32.add (local.get $vn) (local.get $off))))))
    (local.set $pc (i32.add (local.get $p) (local.get $off)))
    (v128.store align=8 (local.get $pc) (f64x2.add (v128.load align=8 (local.get $pc)) (f64x2.mul (local.get $vx) (local.get $vvnr))))
    (local.set $off (i32.add (local.get $off) (i32.const 16)))
    (br $cloop)))
  (local.set $s (f64.add (f64x2.extract_lane 0 (local.get $vs)) (f64x2.extract_lane 1 (local.get $vs))))
  (if (i32.lt_u (local.get $cv) (local.get $ce)) (then
    (local.set $x (f64.sub (f64.load (i32.add (local.get $rr) (local.get $cv)))
      (f64.add (f64.mul (local.get $vr) (f64.load (i32.add (local.get $w) (local.get $cv))))
               (f64.mul (local.get $wr) (f64.load (i32.add (local.get $v) (local.get $cv)))))))
    (f64.store (i32.add (local.get $rr) (local.get $cv)) (local.get $x))
    (local.set $s (f64.add (local.get $s) (f64.mul (local.get $x) (f64.load (i32.add (local.get $vn) (local.get $cv))))))
    (local.set $pc (i32.add (local.get $p) (local.get $cv)))
    (f64.store (local.get $pc) (f64.add (f64.load (local.get $pc)) (f64.mul (local.get $x) (local.get $vnr))))))
  (local.set $d (f64.sub (f64.load (i32.add (local.get $rr) (local.get $ce))) (f64.mul (f64.const 2) (f64.mul (local.get $vr) (local.get $wr)))))
  (f64.store (i32.add (local.get $rr) (local.get $ce)) (local.get $d))
  (local.set $pc (i32.add (local.get $p) (local.get $ce)))
  (f64.store (local.get $pc) (f64.add (f64.load (local.get $pc)) (f64.add (local.get $s) (f64.mul (local.get $d) (local.get $vnr)))))
  (local.set $r (i32.add (local.get $r) (i32.const 1)))
  (br $rloop)))
)`;
}

/**
 * refl(v, len, tau, y, ldy, l): applies the reflector I − tau·v·vᵀ (v: `len` doubles at byte pointer v) to
 * the first `len` entries of each of the l rows of y (row stride ldy bytes): y_j −= tau·(v·y_j)·v.
 */
function refl() {
  return `(func $refl (export "refl") (param $v i32) (param $len i32) (param $tau f64) (param $y i32) (param $ldy i32) (param $l i32)
(local $j i32) (local $row i32) (local $off i32) (local $cv i32) (local $ce i32) (local $vs v128) (local $d f64) (local $vd v128) (local $pc i32)
(local.set $ce (i32.shl (local.get $len) (i32.const 3)))
(local.set $cv (i32.and (local.get $ce) (i32.const -16)))
(local.set $j (i32.const 0))
(block $jend (loop $jloop (br_if $jend (i32.ge_s (local.get $j) (local.get $l)))
  (local.set $row (i32.add (local.get $y) (i32.mul (local.get $j) (local.get $ldy))))
  (local.set $vs (v128.const f64x2 0 0))
  (local.set $off (i32.const 0))
  (block $cend (loop $cloop (br_if $cend (i32.ge_u (local.get $off) (local.get $cv)))
    (local.set $vs (f64x2.add (local.get $vs) (f64x2.mul (v128.load align=8 (i32.add (local.get $v) (local.get $off))) (v128.load align=8 (i32.add (local.get $row) (local.get $off))))))
    (local.set $off (i32.add (local.get $off) (i32.const 16)))
    (br $cloop)))
  (local.set $d (f64.add (f64x2.extract_lane 0 (local.get $vs)) (f64x2.extract_lane 1 (local.get $vs))))
  (if (i32.lt_u (local.get $cv) (local.get $ce)) (then
    (local.set $d (f64.add (local.get $d) (f64.mul (f64.load (i32.add (local.get $v) (local.get $cv))) (f64.load (i32.add (local.get $row) (local.get $cv))))))))
  (local.set $d (f64.mul (local.get $d) (local.get $tau)))
  (if (f64.ne (local.get $d) (f64.const 0)) (then
    (local.set $vd (f64x2.splat (local.get $d)))
    (local.set $off (i32.const 0))
    (block $uend (loop $uloop (br_if $uend (i32.ge_u (local.get $off) (local.get $cv)))
      (local.set $pc (i32.add (local.get $row) (local.get $off)))
      (v128.store align=8 (local.get $pc) (f64x2.sub (v128.load align=8 (local.get $pc)) (f64x2.mul (local.get $vd) (v128.load align=8 (i32.add (local.get $v) (local.get $off))))))
      (local.set $off (i32.add (local.get $off) (i32.const 16)))
      (br $uloop)))
    (if (i32.lt_u (local.get $cv) (local.get $ce)) (then
      (local.set $pc (i32.add (local.get $row) (local.get $cv)))
      (f64.store (local.get $pc) (f64.sub (f64.load (local.get $pc)) (f64.mul (local.get $d) (f64.load (i32.add (local.get $v) (local.get $cv))))))))))
  (local.set $j (i32.add (local.get $j) (i32.const 1)))
  (br $jloop)))
)`;
}

/**
 * rotseq(z, rowBytes, len, lo, hi, cs, ss): for i = hi − 1 down to lo, rotates rows i and i + 1 (`len`
 * doubles each, row stride rowBytes) of z: (r0, r1) ← (c·r0 − s·r1, s·r0 + c·r1) with c = cs[i], s = ss[i]
 * (byte pointers to double arrays). One QL sweep's plane rotations applied to the eigenvector rows.
 */
function rotseq() {
  return `(func $rotseq (export "rotseq") (param $z i32) (param $rb i32) (param $len i32) (param $lo i32) (param $hi i32) (param $cs i32) (param $ss i32)
(local $i i32) (local $r0 i32) (local $r1 i32) (local $off i32) (local $cv i32) (local $ce i32) (local $c f64) (local $s f64)
(local $vc v128) (local $vs v128) (local $x v128) (local $y v128) (local $fx f64) (local $fy f64)
(local.set $ce (i32.shl (local.get $len) (i32.const 3)))
(local.set $cv (i32.and (local.get $ce) (i32.const -16)))
(local.set $i (i32.sub (local.get $hi) (i32.const 1)))
(block $iend (loop $iloop (br_if $iend (i32.lt_s (local.get $i) (local.get $lo)))
  (local.set $c (f64.load (i32.add (local.get $cs) (i32.shl (local.get $i) (i32.const 3)))))
  (local.set $s (f64.load (i32.add (local.get $ss) (i32.shl (local.get $i) (i32.const 3)))))
  (local.set $vc (f64x2.splat (local.get $c)))
  (local.set $vs (f64x2.splat (local.get $s)))
  (local.set $r0 (i32.add (local.get $z) (i32.mul (local.get $i) (local.get $rb))))
  (local.set $r1 (i32.add (local.get $r0) (local.get $rb)))
  (local.set $off (i32.const 0))
  (block $kend (loop $kloop (br_if $kend (i32.ge_u (local.get $off) (local.get $cv)))
    (local.set $x (v128.load align=8 (i32.add (local.get $r1) (local.get $off))))
    (local.set $y (v128.load align=8 (i32.add (local.get $r0) (local.get $off))))
    (v128.store align=8 (i32.add (local.get $r1) (local.get $off)) (f64x2.add (f64x2.mul (local.get $vs) (local.get $y)) (f64x2.mul (local.get $vc) (local.get $x))))
    (v128.store align=8 (i32.add (local.get $r0) (local.get $off)) (f64x2.sub (f64x2.mul (local.get $vc) (local.get $y)) (f64x2.mul (local.get $vs) (local.get $x))))
    (local.set $off (i32.add (local.get $off) (i32.const 16)))
    (br $kloop)))
  (if (i32.lt_u (local.get $cv) (local.get $ce)) (then
    (local.set $fx (f64.load (i32.add (local.get $r1) (local.get $cv))))
    (local.set $fy (f64.load (i32.add (local.get $r0) (local.get $cv))))
    (f64.store (i32.add (local.get $r1) (local.get $cv)) (f64.add (f64.mul (local.get $s) (local.get $fy)) (f64.mul (local.get $c) (local.get $fx))))
    (f64.store (i32.add (local.get $r0) (local.get $cv)) (f64.sub (f64.mul (local.get $c) (local.get $fy)) (f64.mul (local.get $s) (local.get $fx))))))
  (local.set $i (i32.sub (local.get $i) (i32.const 1)))
  (br $iloop)))
)`;
}

const wat = [
  ';; Generated by generate-kernels.mjs: f64x2 SIMD kernels for gradmax linear algebra.',
  '(module',
  '(import "env" "memory" (memory 1))',
  tb(4, 2), tb(1, 2), tb(4, 1), tb(1, 1),
  ax(4, 2), ax(1, 2), ax(4, 1), ax(1, 1),
  trid(),
  refl(),
  rotseq(),
  ')',
].join('\n');
writeFileSync(new URL('./kernels.wat', import.meta.url), wat + '\n');
const wabt = await require('wabt')();
const mod = wabt.parseWat('kernels.wat', wat, { simd: true });
mod.validate();
const { buffer } = mod.toBinary({});
const b64 = Buffer.from(buffer).toString('base64');
writeFileSync(
  new URL('./kernels-binary.ts', import.meta.url),
  `// Generated by generate-kernels.mjs from kernels.wat: do not edit.\n/** The assembled f64x2 SIMD kernels (WebAssembly binary, base64). */\nexport const KERNELS_WASM_BASE64 =\n  '${b64}';\n`,
);
console.log(`kernels: ${buffer.length} bytes`);
