//! The dashboard: hyper 1.x serving maud pages, JSON, `/metrics`.
