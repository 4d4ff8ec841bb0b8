"""Chatbots and auto-funnels: scenarios (versioned JSON), a pure engine, the runtime.

definition.py checks a scenario's shape, checks.py what publishing needs beyond it
(steps that exist, no endless loop, variables that mean something); engine.py runs
steps as pure functions of (state, event, now); triggers.py decides which scenario an
event starts; runtime.py reads the hub's events in a worker, keeps runs in the
database and applies what the engine asks for (actions.py). docs/automations.md.
"""
