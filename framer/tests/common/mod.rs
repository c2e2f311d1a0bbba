//! Code shared by the framer's integration tests: raw frame bytes, and the
//! checks the fuzz targets run.
#![allow(dead_code)]
pub mod fuzz_checks;
pub mod raw;
