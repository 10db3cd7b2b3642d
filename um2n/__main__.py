from um2n.cli import main

raise SystemExit(main())
