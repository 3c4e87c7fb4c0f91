from mnli_lesson.cli import main

raise SystemExit(main())
