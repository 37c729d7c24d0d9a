//! The weekly breach summary (skeleton; issue 8).
