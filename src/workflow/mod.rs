//! Workflows built on the run: strategies over many runs, or one run with another
//! base or target.

pub mod compare;
pub mod pipeline;
