//! The protocols devices speak instead of the REST API, each in its own wire format and
//! its own error format (an OCSP status, a SCEP failInfo, ACME problem types). They are
//! thin: every answer comes from a core service (`Authority::ocsp`, `Authority::scep`, `Authority::est`,
//! which issues through the issuer as an enrollment principal).

pub mod acme;
pub mod est;
pub mod ocsp;
pub mod scep;
