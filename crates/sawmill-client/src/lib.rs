//! The HTTP client of sawmill's shippers and command-line tools: `sawmill ingest` (and its
//! `--follow` mode), `sawmill search`, `sawmill archive restore`, `sawmill cloudwatch
//! backfill` and the Lambda forwarder all talk to the server through it.
//!
//! - [`Client`] is bound to one server ([`ClientConfig`]: base URL, API key sent as
//!   `Authorization: Bearer`, the tenant sent as `X-Sawmill-Tenant`, user agent, timeouts)
//!   and has the helpers of the JSON API ([`Client::get_json`], [`Client::post_json`]).
//! - [`Client::send_ingest`] sends one [`IngestBatch`] to `POST /api/v1/ingest` under the one
//!   set of retry rules of sawmill ([`ingest`]): connection errors, timeouts, 408, 409, 429,
//!   5xx and a 2xx answer that was cut off are tried again (the `Idempotency-Key` makes that
//!   safe), waiting as [`sawmill_core::RetryPolicy`] says with `Retry-After` as a floor, until
//!   the attempts or the deadline of a [`Retry`] run out; anything else is final.
//! - [`Encoding`] compresses request bodies (zstd, gzip or none).
//!
//! Errors are typed and keep their sources (`sawmill_core::error::report` prints them whole:
//! reqwest's own message does not say why a connection failed).

mod client;
mod encoding;
pub mod ingest;

pub use client::{error_message, Client, ClientConfig, ClientError, RequestError};
pub use encoding::{CompressError, Encoding};
pub use ingest::{AttemptError, IngestBatch, IngestError, Retry, Retrying};
pub use sawmill_core::IngestAnswer;
