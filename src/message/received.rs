//! Reading the SMTP AUTH login from the `Received:` header the school's own
//! Postfix added (content-filter mode). (Stub; filled in next.)
