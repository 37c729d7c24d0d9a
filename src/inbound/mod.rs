//! Front-ends that receive mail from the MTA: the after-queue SMTP content
//! filter ([`smtp`]) and the Postfix `XFORWARD` attributes it accepts
//! ([`xforward`]).

pub mod milter;
pub mod smtp;
pub mod xforward;
