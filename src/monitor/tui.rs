//! The monitor's full-screen view (ratatui). It only draws what `monitor::state` holds; keys
//! and refreshes are handled by the monitor command.

use crate::monitor::state::MonitorState;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Borders, Cell, Clear, List, ListItem, Paragraph, Row, Sparkline, Table, TableState,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    #[default]
    Name,
    Cpu,
    Memory,
    Restarts,
}

impl Sort {
    pub fn next(self) -> Self {
        match self {
            Self::Name => Self::Cpu,
            Self::Cpu => Self::Memory,
            Self::Memory => Self::Restarts,
            Self::Restarts => Self::Name,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Cpu => "cpu",
            Self::Memory => "memory",
            Self::Restarts => "restarts",
        }
    }
}

#[derive(Debug, Default)]
pub struct View {
    pub selected: usize,
    pub sort: Sort,
    /// The log pane: service and its last lines.
    pub logs: Option<(String, Vec<String>)>,
}

/// Services in display order.
pub fn order(state: &MonitorState, sort: Sort) -> Vec<String> {
    let Some(status) = &state.status else {
        return Vec::new();
    };
    let mut names: Vec<String> = status.services.iter().map(|s| s.service.clone()).collect();
    let key = |name: &String| -> (i64, String) {
        let rates = state.rates(name).unwrap_or_default();
        let restarts = status
            .services
            .iter()
            .find(|s| &s.service == name)
            .map_or(0, |s| s.restarts);
        let k = match sort {
            Sort::Name => 0,
            Sort::Cpu => -(rates.cpu_percent * 10.0) as i64,
            Sort::Memory => -(rates.memory_bytes as i64),
            Sort::Restarts => -(restarts as i64),
        };
        (k, name.clone())
    };
    names.sort_by_key(key);
    names
}

pub fn draw(frame: &mut Frame, state: &MonitorState, view: &View) {
    let [header, table, bottom] =
        Layout::vertical([Constraint::Length(3), Constraint::Min(6), Constraint::Length(9)])
            .areas(frame.area());
    draw_header(frame, header, state, view);
    let names = order(state, view.sort);
    draw_table(frame, table, state, &names, view.selected);
    let [graphs, events] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(bottom);
    if let Some(name) = names.get(view.selected) {
        draw_graphs(frame, graphs, state, name);
    }
    draw_events(frame, events, state);
    if let Some((service, lines)) = &view.logs {
        let area = frame.area().inner(ratatui::layout::Margin {
            horizontal: 4,
            vertical: 3,
        });
        frame.render_widget(Clear, area);
        let text: Vec<Line> = lines.iter().map(|l| Line::raw(l.as_str())).collect();
        let block = Block::default()
            .borders(Borders::ALL)
            .title(format!(" last log lines of {service} (l to close) "));
        frame.render_widget(Paragraph::new(text).block(block), area);
    }
}

fn draw_header(frame: &mut Frame, area: Rect, state: &MonitorState, view: &View) {
    let Some(status) = &state.status else {
        frame.render_widget(Paragraph::new("waiting for the engine..."), area);
        return;
    };
    let bad: Vec<&str> = status
        .services
        .iter()
        .filter(|s| !s.healthy)
        .map(|s| s.service.as_str())
        .collect();
    let verdict = match bad.is_empty() {
        true => Span::styled(
            format!("healthy: {} services", status.services.len()),
            Style::default().fg(Color::Green),
        ),
        false => Span::styled(
            format!("degraded: {}", bad.join(", ")),
            Style::default().fg(Color::Red),
        ),
    };
    let lat = state.latency();
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1} ms"));
    let line1 = Line::from(vec![
        Span::raw(format!("pricescan-ctl monitor: {}   ", status.project)),
        verdict,
    ]);
    let line2 = Line::raw(format!(
        "API probe p50 {}  p95 {}  errors {}/{}   sort: {}   keys: q quit, arrows select, s sort, l logs",
        ms(lat.p50_ms),
        ms(lat.p95_ms),
        lat.errors,
        lat.probes,
        view.sort.label()
    ));
    frame.render_widget(
        Paragraph::new(vec![line1, line2]).block(Block::default().borders(Borders::BOTTOM)),
        area,
    );
}

fn draw_table(frame: &mut Frame, area: Rect, state: &MonitorState, names: &[String], selected: usize) {
    let Some(status) = &state.status else { return };
    let rows = names.iter().filter_map(|name| {
        let s = status.services.iter().find(|s| &s.service == name)?;
        let r = state.rates(name).filter(|_| s.state == "running");
        let colour = match (s.state.as_str(), s.health.as_str()) {
            ("running", "healthy" | "none") => Color::Green,
            ("running", "starting") => Color::Yellow,
            _ => Color::Red,
        };
        let cells = crate::monitor::state::row_text(s, r)
            .into_iter()
            .enumerate()
            .map(|(i, text)| match i {
                // State and health take the row's colour.
                1 | 2 => Cell::from(text).style(Style::default().fg(colour)),
                _ => Cell::from(text),
            });
        Some(Row::new(cells.collect::<Vec<_>>()))
    });
    let header =
        Row::new(crate::monitor::state::COLUMNS).style(Style::default().add_modifier(Modifier::BOLD));
    let widths = [
        Constraint::Length(34),
        Constraint::Length(9),
        Constraint::Length(10),
        Constraint::Length(7),
        Constraint::Length(22),
        Constraint::Length(22),
        Constraint::Length(22),
        Constraint::Length(8),
        Constraint::Length(8),
    ];
    let table = Table::new(rows, widths)
        .header(header)
        .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED));
    let mut table_state = TableState::default().with_selected(Some(selected));
    frame.render_stateful_widget(table, area, &mut table_state);
}

fn draw_graphs(frame: &mut Frame, area: Rect, state: &MonitorState, service: &str) {
    let [cpu, memory] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    let cpu_data = state.cpu_history(service);
    let mem_data = state.memory_history(service);
    let title = |what: &str| format!(" {what} of {service} ");
    frame.render_widget(
        Sparkline::default()
            .block(Block::default().borders(Borders::ALL).title(title("cpu")))
            .data(&cpu_data),
        cpu,
    );
    frame.render_widget(
        Sparkline::default()
            .block(Block::default().borders(Borders::ALL).title(title("memory")))
            .data(&mem_data),
        memory,
    );
}

fn draw_events(frame: &mut Frame, area: Rect, state: &MonitorState) {
    let items: Vec<ListItem> = state
        .events
        .iter()
        .map(|e| {
            let colour =
                if e.action.contains("die") || e.action.contains("oom") || e.action.contains("unhealthy") {
                    Color::Red
                } else {
                    Color::Reset
                };
            ListItem::new(Line::styled(
                format!("{} {} {}", e.time, e.service, e.action),
                Style::default().fg(colour),
            ))
        })
        .collect();
    frame.render_widget(
        List::new(items).block(Block::default().borders(Borders::ALL).title(" engine events ")),
        area,
    );
}
