//! Which way bytes travel on a connection, relative to its client. Every stage from the flow
//! table to the parsers speaks of directions, so the word lives here, depending on nothing.

/// Direction of travel relative to the connection's client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client to server.
    Ctos,
    /// Server to client.
    Stoc,
}

impl Direction {
    /// 0 for client to server, 1 for server to client: an index into per-direction arrays.
    pub fn index(self) -> usize {
        match self {
            Direction::Ctos => 0,
            Direction::Stoc => 1,
        }
    }

    pub fn reverse(self) -> Direction {
        match self {
            Direction::Ctos => Direction::Stoc,
            Direction::Stoc => Direction::Ctos,
        }
    }
}
