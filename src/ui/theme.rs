//! Colours and emphasis. With `NO_COLOR` set, only modifiers (bold, reverse) are used.

use ratatui::style::{Color, Modifier, Style};

#[derive(Debug, Clone, Copy)]
pub struct Theme {
    color: bool,
}

impl Theme {
    pub fn new(color: bool) -> Self {
        Self { color }
    }

    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }

    pub fn title(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }
    pub fn dim(&self) -> Style {
        if self.color {
            Style::default().fg(Color::DarkGray)
        } else {
            Style::default()
        }
    }
    pub fn key(&self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }
    pub fn read_only(&self) -> Style {
        if self.color {
            Style::default().fg(Color::Black).bg(Color::Green).add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::BOLD)
        }
    }
    pub fn write(&self) -> Style {
        if self.color {
            Style::default().fg(Color::White).bg(Color::Red).add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED)
        }
    }
    pub fn error(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }
    pub fn warn(&self) -> Style {
        self.fg(Color::Yellow)
    }
    pub fn ok(&self) -> Style {
        self.fg(Color::Green)
    }
    pub fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
    pub fn header_row(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }
    /// The style of a rotation status.
    pub fn status(&self, s: crate::domain::status::Status) -> Style {
        use crate::domain::status::Status;
        match s {
            Status::Alert => self.error().add_modifier(Modifier::REVERSED),
            Status::Overdue => self.error(),
            Status::Unknown => self.fg(Color::Magenta),
            Status::DueSoon => self.warn(),
            Status::Ok => self.ok(),
            Status::NotApplicable => self.dim(),
        }
    }

    /// The style of an alert severity.
    pub fn severity(&self, s: crate::domain::rules::Severity) -> Style {
        use crate::domain::rules::Severity;
        match s {
            Severity::Critical => self.error().add_modifier(Modifier::REVERSED),
            Severity::High => self.error(),
            Severity::Medium => self.warn(),
            Severity::Low => self.fg(Color::Cyan),
        }
    }

    /// The style of a key or secret state.
    pub fn state(&self, state: &str) -> Style {
        match state {
            "Enabled" | "Active" => self.ok(),
            "Disabled" | "PendingImport" | "Creating" | "Updating" => self.warn(),
            "PendingDeletion" | "PendingReplicaDeletion" | "Unavailable" | "unknown" => self.error(),
            _ => Style::default(),
        }
    }
}
