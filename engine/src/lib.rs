//! dist-space engine: a pure eg-walker event-graph text engine (work in progress).
