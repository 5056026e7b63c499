//! One connection to the directory database: its driver task forwards
//! notifications and says when the connection ends.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt as _;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client};

use crate::tls::MakeRustls;
use crate::{PostgresDirectoryError, PostgresSettings};

/// What the connection's driver reports.
#[derive(Debug)]
pub(crate) enum Event {
    /// A NOTIFY on a channel this connection listens to.
    Notified,
    /// The connection ended (the server went away, was terminated, …).
    Closed(String),
}

/// Connects within the connect timeout. The returned receiver gets every
/// notification and, last, why the connection closed.
pub(crate) async fn connect(
    settings: &PostgresSettings,
) -> Result<(Client, mpsc::UnboundedReceiver<Event>), PostgresDirectoryError> {
    let config = settings.driver_config()?;
    let tls = MakeRustls::new(settings.ca_file.as_deref())?;
    // The driver's own connect_timeout bounds each address; this bounds the
    // whole (TLS and authentication included).
    let bound = settings.connect_timeout + Duration::from_millis(500);
    let (client, mut connection) = tokio::time::timeout(bound, config.connect(tls))
        .await
        .map_err(|_| PostgresDirectoryError::Connect(format!("timed out after {bound:?}")))?
        .map_err(|e| PostgresDirectoryError::Connect(crate::error::describe(&e)))?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        let reason = loop {
            match messages.next().await {
                Some(Ok(AsyncMessage::Notification(_))) => {
                    let _ = tx.send(Event::Notified);
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break crate::error::describe(&e),
                None => break "connection closed".to_owned(),
            }
        };
        let _ = tx.send(Event::Closed(reason));
    });
    Ok((client, rx))
}

/// Runs `fut` (a statement) within `limit`.
pub(crate) async fn timed<T>(
    limit: Duration,
    fut: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, PostgresDirectoryError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(result) => result.map_err(PostgresDirectoryError::from),
        Err(_) => Err(PostgresDirectoryError::Timeout(limit)),
    }
}
