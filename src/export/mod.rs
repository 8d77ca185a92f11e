//! What the register gives out: the registration form of one case ([`form`], printable
//! HTML), the register for auditors ([`register`], CSV or JSON), and everything about one
//! person ([`person`], a data subject access request). Pure rendering; the CLI reads the
//! store and writes the files.

pub mod form;
pub mod person;
pub mod register;
