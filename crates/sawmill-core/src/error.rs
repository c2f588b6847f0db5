//! One line for an error and its causes, as sawmill prints and logs them.
//!
//! Library errors chain their causes (`source()`), and many also quote their cause in their
//! own message so that it reads well alone; a report walks the chain and adds each cause only
//! when the text so far does not already say it.

use std::error::Error;

/// `error: cause: cause of the cause`, without repeating a cause already quoted.
pub fn report(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !more.is_empty() && !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("cannot read config file x: {0}")]
        Quoting(#[source] std::io::Error),
        #[error("cannot start")]
        Silent(#[source] std::io::Error),
    }

    #[test]
    fn causes_are_added_once() {
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        assert_eq!(
            report(&Outer::Quoting(io())),
            "cannot read config file x: no such file"
        );
        assert_eq!(report(&Outer::Silent(io())), "cannot start: no such file");
    }
}
