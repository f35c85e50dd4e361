//! `dnsdoc top`: a live terminal view over the continuous engine, refreshed every
//! window (1 s by default). Keys are read between polls, so `q` quits within ~10 ms;
//! quitting ends the run and the probes are detached before the terminal is restored.

mod view;

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{Context, Result};
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::DefaultTerminal;

use crate::exit::{self, UsageError};
use crate::pipeline::continuous::{observe_continuous, ContinuousOptions, Flow, WindowSink};
use crate::series::Series;
use crate::snapshot::Snapshot;
pub use view::{SortKey, Table};

/// What `dnsdoc top` was asked to do.
#[derive(Debug, Clone)]
pub struct TopOptions {
    pub run: ContinuousOptions,
}

/// Runs `dnsdoc top` until `q`, Ctrl-C or SIGTERM.
pub fn run(opts: &TopOptions) -> Result<i32> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(UsageError(
            "dnsdoc top needs a terminal; for scripts use `dnsdoc watch --format json` (one \
             window) or `dnsdoc watch --interval 1s --format json` (one JSON line per second)"
                .into(),
        )
        .into());
    }
    let terminal = ratatui::try_init().context("setting up the terminal")?;
    let mut sink = Screen {
        terminal,
        state: view::State::new(&opts.run),
        drawn: false,
    };
    let result = observe_continuous(&opts.run, &mut sink);
    // The probes are detached (observe_continuous returned); give the terminal back.
    ratatui::restore();
    result.map(|()| exit::OK)
}

/// The terminal and what it shows.
struct Screen {
    terminal: DefaultTerminal,
    state: view::State,
    drawn: bool,
}

impl Screen {
    fn draw(&mut self) -> Result<()> {
        if !self.drawn {
            // Lines written to stderr while the probes attached are on the screen.
            self.terminal.clear().context("clearing the terminal")?;
        }
        let state = &self.state;
        self.terminal
            .draw(|f| view::draw(f, state))
            .context("drawing")?;
        self.drawn = true;
        Ok(())
    }
}

impl WindowSink for Screen {
    fn window(&mut self, snap: &Snapshot, series: &Series) -> Result<Flow> {
        let prev = std::mem::replace(&mut self.state.total_histogram, series.duration.clone());
        self.state.histogram = series.duration.since(&prev);
        self.state.snapshot = Some(snap.clone());
        self.state.windows += 1;
        self.draw()?;
        Ok(Flow::Continue)
    }

    fn idle(&mut self) -> Result<Flow> {
        if !self.drawn {
            self.draw()?;
        }
        while event::poll(Duration::ZERO).context("reading the keyboard")? {
            let Event::Key(key) = event::read().context("reading the keyboard")? else {
                // A resize: redraw at the new size.
                self.draw()?;
                continue;
            };
            if key.kind != KeyEventKind::Press {
                continue;
            }
            match key.code {
                KeyCode::Char('q') | KeyCode::Esc => return Ok(Flow::Stop),
                KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                    return Ok(Flow::Stop)
                }
                KeyCode::Char('s') => self.state.sort = self.state.sort.next(),
                KeyCode::Tab => self.state.table = self.state.table.next(),
                KeyCode::BackTab => self.state.table = self.state.table.next().next(),
                _ => continue,
            }
            self.draw()?;
        }
        Ok(Flow::Continue)
    }
}
