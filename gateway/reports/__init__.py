"""Reports and exports: figures the database aggregates over a date range (queries), small
server-drawn SVG charts (charts), and CSV, XLSX and PDF files written as streams
(export). Used by the web app, `helpdesk export` and the daemon's daily summary."""
