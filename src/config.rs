//! Settings of `edgeprobe run`: a TOML file, then `EDGEPROBE_*` variables and flags over it.
