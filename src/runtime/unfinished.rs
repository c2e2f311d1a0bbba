//! The list of an event loop's connections whose wake-up budget ran out
//! with work left (bytes unread, events undelivered, output unwritten):
//! fairness between the connections of one loop.
//!
//! mio is edge-triggered: a connection that stopped reading before its
//! socket was drained gets no new event for the bytes left, so the loop
//! must remember it. Each turn of the loop serves what its events, other
//! threads and timers brought, then the connections listed on the turn
//! before that this turn has not served yet. Invariants: a connection is
//! listed at most once; it is served at most once per turn from the list,
//! and not at all from the list if something else served it that turn;
//! listed connections are served in the order their budgets ran out.
//! While the list is not empty the loop polls without blocking, so new
//! events still get in between two turns.

use std::collections::HashSet;

use mio::Token;

/// Connections to serve again; see the module documentation.
#[derive(Debug, Default)]
pub(crate) struct Unfinished {
    /// To serve on the next turn, in the order their budgets ran out.
    next: Vec<Token>,
    /// The members of `next`.
    listed: HashSet<Token>,
    /// Listed on the turn before, in order.
    carried: Vec<Token>,
    /// The members of `carried` this turn has not served yet.
    not_served: HashSet<Token>,
}

impl Unfinished {
    /// True when no connection waits: the loop may block in its poll.
    pub(crate) fn is_empty(&self) -> bool {
        self.next.is_empty()
    }

    /// Starts a turn: the connections listed so far are carried into it.
    pub(crate) fn begin_turn(&mut self) {
        self.carried = std::mem::take(&mut self.next);
        std::mem::swap(&mut self.not_served, &mut self.listed);
        self.listed.clear();
    }

    /// `token` was served this turn; `unfinished`: its budget ran out with
    /// work left, so it is listed for the next turn.
    pub(crate) fn served(&mut self, token: Token, unfinished: bool) {
        if !self.not_served.is_empty() {
            self.not_served.remove(&token);
        }
        if unfinished && self.listed.insert(token) {
            self.next.push(token);
        }
    }

    /// The carried connections this turn has not served yet, in order. The
    /// caller serves each (reporting it through [`served`](Self::served)).
    pub(crate) fn take_carried(&mut self) -> Vec<Token> {
        let mut carried = std::mem::take(&mut self.carried);
        carried.retain(|token| self.not_served.contains(token));
        self.not_served.clear();
        carried
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Token = Token(1);
    const B: Token = Token(2);
    const C: Token = Token(3);

    #[test]
    fn an_unfinished_connection_is_served_on_the_next_turn_after_the_others() {
        let mut list = Unfinished::default();
        assert!(list.is_empty(), "nothing waits: the loop may block");
        list.begin_turn();
        list.served(A, true);
        list.served(B, false);
        assert!(list.take_carried().is_empty(), "listed for the next turn");
        assert!(!list.is_empty(), "A waits: the next poll must not block");

        list.begin_turn();
        // This turn's events serve B and C first; A comes after them.
        list.served(B, false);
        list.served(C, false);
        assert_eq!(list.take_carried(), vec![A]);
        list.served(A, false);
        assert!(list.is_empty(), "A finished its work");
        list.begin_turn();
        assert!(list.take_carried().is_empty());
    }

    #[test]
    fn a_connection_served_by_an_event_is_not_served_again_from_the_list() {
        let mut list = Unfinished::default();
        list.begin_turn();
        list.served(A, true);
        list.served(B, true);
        list.take_carried();

        list.begin_turn();
        // A new edge serves A before the list does: once per turn.
        list.served(A, true);
        assert_eq!(list.take_carried(), vec![B]);
        list.served(B, true);
        // Both are still unfinished, in the order their budgets ran out.
        list.begin_turn();
        assert_eq!(list.take_carried(), vec![A, B]);
    }

    #[test]
    fn a_connection_is_listed_once_however_often_it_runs_out() {
        let mut list = Unfinished::default();
        list.begin_turn();
        list.served(A, true);
        list.served(A, true);
        list.served(B, true);
        list.served(A, true);
        list.take_carried();
        list.begin_turn();
        assert_eq!(list.take_carried(), vec![A, B]);
    }

    #[test]
    fn a_connection_stays_listed_until_a_turn_leaves_it_finished() {
        let mut list = Unfinished::default();
        list.begin_turn();
        list.served(A, true);
        list.take_carried();
        for _ in 0..3 {
            list.begin_turn();
            assert_eq!(list.take_carried(), vec![A]);
            list.served(A, true);
            assert!(!list.is_empty());
        }
        list.begin_turn();
        assert_eq!(list.take_carried(), vec![A]);
        list.served(A, false);
        assert!(list.is_empty());
    }
}
