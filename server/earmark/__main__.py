from earmark.cli import main

raise SystemExit(main())
