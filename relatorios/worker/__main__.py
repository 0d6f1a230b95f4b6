"""`python -m relatorios.worker`: run one Python worker until SIGTERM or Ctrl-C."""

from relatorios.worker.loop import main

raise SystemExit(main())
