//! modhash-plugin: the module ABI.
