"""The reviewer workbench: server-rendered pages for working the manual-review queue."""
