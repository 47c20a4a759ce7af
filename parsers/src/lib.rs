//! Parsers for the two kinds of untrusted input that arrive without a
//! session: job batches from the ingestion API and Stripe's webhook
//! signatures. They depend on no server code, so the fuzz targets in
//! `fuzz/` build them quickly.

pub mod job_batch;
pub mod stripe_signature;
