// The `require` entry of every @gradmax package has no exports: the packages are ES modules only. Import them from an
// ES module (.mts, or .ts in a "type": "module" package) or use `await import(...)`.
export {};
