//! (adapter being written)
