//! Decoders of the protocols that log shippers already speak, each turning a decompressed
//! request body into sawmill events (normalized as `/api/v1/ingest` normalizes them) plus
//! what the protocol's answer needs to say about each record.
//!
//! Nothing here does I/O or knows about HTTP: the server's handlers read requests and hand
//! these decoders to the one ingest pipeline, and the fuzz targets call them directly. No
//! decoder panics on any input; every limit of [`sawmill_core::Limits`] applies.

pub mod es_bulk;
pub mod otlp;
