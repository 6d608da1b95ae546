use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// What went wrong, sorted by what the caller should do about it:
/// [`is_transient`](DbError::is_transient) errors are worth a retry,
/// `NotFound` and `Conflict` are answers about the data, the rest are bugs or
/// operator errors.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database could not be reached or the pool had no connection in
    /// time.
    #[error("database unavailable: {0}")]
    Connection(String),
    /// Lock contention the database gave up on (SQLite `database is locked`,
    /// PostgreSQL serialization failure or deadlock).
    #[error("database busy: {0}")]
    Busy(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// A unique or foreign-key constraint, or a row that already exists with
    /// different contents.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("migration failed: {0}")]
    Migration(String),
    /// The URL names no supported backend.
    #[error("invalid database url: {0}")]
    InvalidUrl(String),
    /// An argument the schema cannot represent, or a stored value that does
    /// not decode (a corrupt or foreign database).
    #[error("invalid data: {0}")]
    Invalid(String),
    /// The write needs the aggregator lease and this process no longer
    /// holds it: another process of the same miner took over.
    #[error("fenced: {0}")]
    Fenced(String),
    #[error("database error: {0}")]
    Other(String),
}

impl DbError {
    /// Whether the same call may succeed if retried later.
    pub fn is_transient(&self) -> bool {
        matches!(self, DbError::Connection(_) | DbError::Busy(_))
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        DbError::NotFound(what.into())
    }
}

impl From<DieselError> for DbError {
    fn from(e: DieselError) -> Self {
        match e {
            DieselError::NotFound => DbError::NotFound("row".into()),
            DieselError::DatabaseError(kind, info) => {
                let msg = info.message().to_string();
                match kind {
                    DatabaseErrorKind::UniqueViolation | DatabaseErrorKind::ForeignKeyViolation => {
                        DbError::Conflict(msg)
                    }
                    DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand => {
                        DbError::Connection(msg)
                    }
                    DatabaseErrorKind::SerializationFailure => DbError::Busy(msg),
                    _ if is_contention(&msg) => DbError::Busy(msg),
                    _ => DbError::Other(msg),
                }
            }
            DieselError::BrokenTransactionManager => DbError::Connection(e.to_string()),
            DieselError::DeserializationError(_) | DieselError::SerializationError(_) => {
                DbError::Invalid(e.to_string())
            }
            other => DbError::Other(other.to_string()),
        }
    }
}

/// diesel reports these as `Unknown`; the message is all there is to go on.
fn is_contention(msg: &str) -> bool {
    const MARKERS: [&str; 4] =
        ["database is locked", "database table is locked", "database is busy", "deadlock detected"];
    MARKERS.iter().any(|m| msg.contains(m))
}

impl From<diesel::ConnectionError> for DbError {
    fn from(e: diesel::ConnectionError) -> Self {
        match e {
            diesel::ConnectionError::InvalidConnectionUrl(m) => DbError::InvalidUrl(m),
            other => DbError::Connection(other.to_string()),
        }
    }
}

impl From<diesel::r2d2::PoolError> for DbError {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        DbError::Connection(e.to_string())
    }
}

impl From<diesel::r2d2::Error> for DbError {
    fn from(e: diesel::r2d2::Error) -> Self {
        match e {
            diesel::r2d2::Error::ConnectionError(c) => c.into(),
            diesel::r2d2::Error::QueryError(q) => q.into(),
        }
    }
}

impl From<serde_json::Error> for DbError {
    fn from(e: serde_json::Error) -> Self {
        DbError::Invalid(format!("json: {e}"))
    }
}

impl From<crate::wire::UnknownValue> for DbError {
    fn from(e: crate::wire::UnknownValue) -> Self {
        DbError::Invalid(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(kind: DatabaseErrorKind, msg: &'static str) -> DbError {
        DieselError::DatabaseError(kind, Box::new(msg.to_string())).into()
    }

    #[test]
    fn classifies_diesel_errors() {
        assert!(matches!(DbError::from(DieselError::NotFound), DbError::NotFound(_)));
        assert!(matches!(db(DatabaseErrorKind::UniqueViolation, "dup"), DbError::Conflict(_)));
        assert!(matches!(db(DatabaseErrorKind::ForeignKeyViolation, "fk"), DbError::Conflict(_)));
        assert!(db(DatabaseErrorKind::ClosedConnection, "gone").is_transient());
        assert!(db(DatabaseErrorKind::SerializationFailure, "retry").is_transient());
        assert!(db(DatabaseErrorKind::Unknown, "database is locked").is_transient());
        assert!(db(DatabaseErrorKind::Unknown, "deadlock detected").is_transient());
        let other = db(DatabaseErrorKind::Unknown, "syntax error");
        assert!(matches!(other, DbError::Other(_)) && !other.is_transient());
    }
}
