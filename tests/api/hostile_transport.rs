//! Hostile clients, transport: method names and request ids bounded, slow headers cut off,
//! a valid key never refused for its address's failures, `/metrics` private, bootstrap keys
//! short-lived.
