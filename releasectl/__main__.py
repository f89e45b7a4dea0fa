from releasectl.cli.app import main

raise SystemExit(main())
