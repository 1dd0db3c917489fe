from rdmbench.cli import main

raise SystemExit(main())
