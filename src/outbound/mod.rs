//! Everything that leaves hallmonitor towards the next hop: the SMTP client
//! ([`relay`]) and the header changes made to a message on its way ([`headers`]).

pub mod headers;
pub mod relay;
