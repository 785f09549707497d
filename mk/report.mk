# The HTML report (src/report: HTML + SVG writer, cJSON readers) goes into libcke.a: one more
# prerequisite of the archive ($^ picks it up), like src/chat. Tests: tests/cli/t_report.sh.
REPORT_SRC := $(wildcard src/report/*.c)
REPORT_OBJ := $(REPORT_SRC:%.c=$(BUILD)/%.o)
$(LIBCORE): $(REPORT_OBJ)
-include $(REPORT_OBJ:.o=.d)
