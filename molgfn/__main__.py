from molgfn.cli import main

raise SystemExit(main())
