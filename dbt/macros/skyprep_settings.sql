{#- The model settings (docs/models.md, "Settings") as vars, checked as the runner checks the
    [models] section of dlt's config:
      skyprep_required_course_ids: [12, 15]
      skyprep_required_course_tags: [compliance]
      skyprep_org_dimensions: {department: ca_0, location: ca_1}
    model_settings holds them as rows; dim_users gains one column per org dimension. -#}

{% macro skyprep_org_dimensions(taken=[]) %}
  {#- taken: the columns dim_users has already; a dimension may not be named like one -#}
  {%- set dimensions = var('skyprep_org_dimensions', {}) or {} %}
  {%- set attributes = ['ca_0', 'ca_1', 'ca_2', 'ca_3', 'ca_4'] %}
  {%- set seen = [] %}
  {%- for name, attribute in dimensions.items() %}
    {%- if attribute not in attributes %}
      {{ exceptions.raise_compiler_error("var skyprep_org_dimensions: " ~ name ~ " = '" ~ attribute ~ "' is not a custom attribute; use one of " ~ attributes | join(', ')) }}
    {%- endif %}
    {%- if not modules.re.match('^[a-z][a-z0-9_]{0,62}$', name) %}
      {{ exceptions.raise_compiler_error("var skyprep_org_dimensions: '" ~ name ~ "' is not a usable column name; use lower case letters, digits and '_', starting with a letter (e.g. department)") }}
    {%- endif %}
    {%- if name in taken %}
      {{ exceptions.raise_compiler_error("var skyprep_org_dimensions: " ~ name ~ " is already a column of dim_users; choose another name") }}
    {%- endif %}
    {%- if attribute in seen %}
      {{ exceptions.raise_compiler_error("var skyprep_org_dimensions: " ~ attribute ~ " is named twice; give each custom attribute one name") }}
    {%- endif %}
    {%- do seen.append(attribute) %}
  {%- endfor %}
  {{ return(dimensions) }}
{% endmacro %}

{% macro skyprep_settings_rows() %}
  {#- (setting, name, value) rows, in the runner's order: course ids, course tags, org dimensions -#}
  {%- set rows = [] %}
  {%- for course_id in var('skyprep_required_course_ids', []) or [] %}
    {%- do rows.append(['required_course_id', none, course_id | int | string]) %}
  {%- endfor %}
  {%- for tag in var('skyprep_required_course_tags', []) or [] %}
    {%- do rows.append(['required_course_tag', none, tag | string]) %}
  {%- endfor %}
  {%- for name, attribute in skyprep_org_dimensions().items() %}
    {%- do rows.append(['org_dimension', name, attribute]) %}
  {%- endfor %}
  {{ return(rows) }}
{% endmacro %}

{% macro skyprep_text(value) -%}
  {%- if value is none -%} cast(null as text)
  {%- else -%} cast('{{ value | replace("'", "''") }}' as text)
  {%- endif -%}
{%- endmacro %}
