package dashboards

// The subset of Grafana's classic dashboard JSON model these dashboards use.
// Field order follows Grafana's own export so a generated file diffs cleanly
// against one saved from the UI.

// Dashboard is one dashboard file.
type Dashboard struct {
	Annotations          Annotations `json:"annotations"`
	Description          string      `json:"description"`
	Editable             bool        `json:"editable"`
	FiscalYearStartMonth int         `json:"fiscalYearStartMonth"`
	GraphTooltip         int         `json:"graphTooltip"`
	ID                   *int        `json:"id"`
	Links                []Link      `json:"links"`
	Panels               []*Panel    `json:"panels"`
	Refresh              string      `json:"refresh"`
	SchemaVersion        int         `json:"schemaVersion"`
	Tags                 []string    `json:"tags"`
	Templating           Templating  `json:"templating"`
	Time                 TimeRange   `json:"time"`
	Timepicker           Timepicker  `json:"timepicker"`
	Timezone             string      `json:"timezone"`
	Title                string      `json:"title"`
	UID                  string      `json:"uid"`
	Version              int         `json:"version"`
	WeekStart            string      `json:"weekStart"`
}

// Annotations holds the built-in "Annotations & Alerts" entry.
type Annotations struct {
	List []Annotation `json:"list"`
}

// Annotation is one annotation query.
type Annotation struct {
	BuiltIn    int        `json:"builtIn"`
	Datasource Datasource `json:"datasource"`
	Enable     bool       `json:"enable"`
	Hide       bool       `json:"hide"`
	IconColor  string     `json:"iconColor"`
	Name       string     `json:"name"`
	Type       string     `json:"type"`
}

// Link is a dashboard link (here: the other dashboards by tag).
type Link struct {
	AsDropdown  bool     `json:"asDropdown"`
	Icon        string   `json:"icon"`
	IncludeVars bool     `json:"includeVars"`
	KeepTime    bool     `json:"keepTime"`
	Tags        []string `json:"tags"`
	TargetBlank bool     `json:"targetBlank"`
	Title       string   `json:"title"`
	Tooltip     string   `json:"tooltip"`
	Type        string   `json:"type"`
	URL         string   `json:"url"`
}

// Datasource references a datasource by type and uid.
type Datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Panel is a visualization or a row.
type Panel struct {
	Collapsed   *bool        `json:"collapsed,omitempty"`
	Datasource  *Datasource  `json:"datasource,omitempty"`
	Description string       `json:"description,omitempty"`
	FieldConfig *FieldConfig `json:"fieldConfig,omitempty"`
	GridPos     GridPos      `json:"gridPos"`
	ID          int          `json:"id"`
	Interval    string       `json:"interval,omitempty"`
	Options     any          `json:"options,omitempty"`
	Panels      []*Panel     `json:"panels,omitempty"`
	Targets     []Target     `json:"targets,omitempty"`
	Title       string       `json:"title"`
	Type        string       `json:"type"`
}

// GridPos places a panel on the 24-column grid.
type GridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

// FieldConfig carries the unit and display defaults of a panel's fields.
type FieldConfig struct {
	Defaults  FieldDefaults `json:"defaults"`
	Overrides []Override    `json:"overrides"`
}

// FieldDefaults are the defaults every field of a panel gets.
type FieldDefaults struct {
	Color      map[string]any `json:"color,omitempty"`
	Custom     map[string]any `json:"custom,omitempty"`
	Decimals   *int           `json:"decimals,omitempty"`
	Mappings   []any          `json:"mappings"`
	Max        *float64       `json:"max,omitempty"`
	Min        *float64       `json:"min,omitempty"`
	Thresholds Thresholds     `json:"thresholds"`
	Unit       string         `json:"unit"`
}

// Thresholds colour values by steps.
type Thresholds struct {
	Mode  string          `json:"mode"`
	Steps []ThresholdStep `json:"steps"`
}

// ThresholdStep is one colour from a value on (Value nil: the base colour).
type ThresholdStep struct {
	Color string   `json:"color"`
	Value *float64 `json:"value"`
}

// Override changes field settings for the fields a matcher selects.
type Override struct {
	Matcher    Matcher    `json:"matcher"`
	Properties []Property `json:"properties"`
}

// Matcher selects fields (byName, byRegexp…).
type Matcher struct {
	ID      string `json:"id"`
	Options string `json:"options"`
}

// Property is one overridden field setting.
type Property struct {
	ID    string `json:"id"`
	Value any    `json:"value"`
}

// Target is one Prometheus query of a panel.
type Target struct {
	Datasource   Datasource `json:"datasource"`
	EditorMode   string     `json:"editorMode"`
	Expr         string     `json:"expr"`
	Format       string     `json:"format,omitempty"`
	Instant      bool       `json:"instant"`
	LegendFormat string     `json:"legendFormat"`
	Range        bool       `json:"range"`
	RefID        string     `json:"refId"`
}

// Templating holds the dashboard's variables.
type Templating struct {
	List []Variable `json:"list"`
}

// Variable is a query variable (label_values) of the dashboard.
type Variable struct {
	AllValue    string         `json:"allValue"`
	Current     map[string]any `json:"current"`
	Datasource  Datasource     `json:"datasource"`
	Definition  string         `json:"definition"`
	Description string         `json:"description"`
	Hide        int            `json:"hide"`
	IncludeAll  bool           `json:"includeAll"`
	Label       string         `json:"label"`
	Multi       bool           `json:"multi"`
	Name        string         `json:"name"`
	Options     []any          `json:"options"`
	Query       VariableQuery  `json:"query"`
	Refresh     int            `json:"refresh"`
	Regex       string         `json:"regex"`
	SkipURLSync bool           `json:"skipUrlSync"`
	Sort        int            `json:"sort"`
	Type        string         `json:"type"`
}

// VariableQuery is the Prometheus datasource's standard variable query: a
// classic label_values(…) string, which every Grafana since 7 understands.
type VariableQuery struct {
	Query string `json:"query"`
	RefID string `json:"refId"`
}

// TimeRange is the dashboard's default time range.
type TimeRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Timepicker lists the refresh intervals offered.
type Timepicker struct {
	RefreshIntervals []string `json:"refresh_intervals"`
}
