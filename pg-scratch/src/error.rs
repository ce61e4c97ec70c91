use std::fmt;

/// Why a scratch cluster could not be found, created, started or used.
///
/// The message says what failed and, where it helps, what to do about it.
/// `Display` also prints the underlying cause (if any), so `{}` alone is enough
/// for a user-facing message.
#[derive(Debug)]
pub struct Error {
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    pub(crate) fn msg(message: impl Into<String>) -> Error {
        Error { message: message.into(), source: None }
    }

    pub(crate) fn with(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Error {
        Error { message: message.into(), source: Some(source.into()) }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        match &self.source {
            Some(source) => write!(f, ": {source}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}
