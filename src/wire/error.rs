//! The one error body every HTTP endpoint answers with:
//! `{"error": {"code": "snake_case_code", "message": "human text"}}`.
//! Clients branch on `code`; `message` is for people.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}
