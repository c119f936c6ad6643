from meaa.cli import main

raise SystemExit(main())
