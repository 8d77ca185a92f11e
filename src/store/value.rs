//! The values a statement is run with ([`super::Sql`]): those both databases take, and
//! what a `None` of each is on PostgreSQL (a NULL there has a type).

use std::borrow::Cow;

use super::Ts;

/// A bound value.
#[derive(Debug, Clone)]
pub enum Arg<'a> {
    /// NULL, of the type PostgreSQL is told.
    Null(Null),
    Int(i64),
    Bool(bool),
    Real(f64),
    Text(Cow<'a, str>),
    Bytes(&'a [u8]),
    Time(Ts),
}

/// The type of a NULL.
#[derive(Debug, Clone, Copy)]
pub enum Null {
    Int,
    Bool,
    Real,
    Text,
    Bytes,
    Time,
}

/// A value [`Sql::bind`] takes.
pub trait Bind<'a> {
    /// What a `None` of it is.
    const NULL: Null;
    fn arg(self) -> Arg<'a>;
}

macro_rules! bind_as {
    ($t:ty, $null:ident, |$v:ident| $arg:expr) => {
        impl<'a> Bind<'a> for $t {
            const NULL: Null = Null::$null;
            fn arg(self) -> Arg<'a> {
                let $v = self;
                $arg
            }
        }
    };
}

bind_as!(i64, Int, |v| Arg::Int(v));
bind_as!(i32, Int, |v| Arg::Int(i64::from(v)));
bind_as!(bool, Bool, |v| Arg::Bool(v));
bind_as!(f64, Real, |v| Arg::Real(v));
bind_as!(Ts, Time, |v| Arg::Time(v));
bind_as!(&'a str, Text, |v| Arg::Text(Cow::Borrowed(v)));
bind_as!(&'a String, Text, |v| Arg::Text(Cow::Borrowed(v.as_str())));
bind_as!(String, Text, |v| Arg::Text(Cow::Owned(v)));
bind_as!(&'a [u8], Bytes, |v| Arg::Bytes(v));
bind_as!(&'a Vec<u8>, Bytes, |v| Arg::Bytes(v.as_slice()));

impl<'a, T: Bind<'a>> Bind<'a> for Option<T> {
    const NULL: Null = T::NULL;
    fn arg(self) -> Arg<'a> {
        match self {
            Some(v) => v.arg(),
            None => Arg::Null(T::NULL),
        }
    }
}

impl<'a, T> Bind<'a> for &'a Option<T>
where
    &'a T: Bind<'a>,
{
    const NULL: Null = <&'a T>::NULL;
    fn arg(self) -> Arg<'a> {
        self.as_ref().arg()
    }
}
