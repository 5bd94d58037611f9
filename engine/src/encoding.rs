//! Binary encoding (in progress).
